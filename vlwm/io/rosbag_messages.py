"""ROS 2 messages <-> numpy: point clouds, images, transforms and times, for the bag importer and exporter.

Messages are the ``rosbags`` dataclasses of the ROS 2 Humble type store (no ROS install needed);
:func:`typestore` serialises and deserialises them (CDR).

Frames.  ROS (REP 103) body and sensor frames are x forward, y left, z up and its world frames
(``map``, ``odom``) are ENU, as ours are (docs/conventions.md), so positions and quaternions pass
through unchanged; both sides store quaternions (x, y, z, w).  Camera images live in the OpenCV
optical frame (x right, y down, z forward) on both sides (ROS ``*_optical_frame``).  A ROS
transform ``parent -> child`` is the child's pose in the parent: the 4x4 matrix ``T_parent_child``
maps child-frame points into the parent frame.
"""

from __future__ import annotations

import functools
import io

import numpy as np

POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
ODOMETRY = "nav_msgs/msg/Odometry"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"

#: ``sensor_msgs/PointField`` datatype codes -> numpy scalar types (byte order set per cloud).
POINT_FIELD_DTYPES = {1: np.int8, 2: np.uint8, 3: np.int16, 4: np.uint16, 5: np.int32, 6: np.uint32,
                      7: np.float32, 8: np.float64}
POINT_FIELD_FLOAT32 = 7

#: ``sensor_msgs/Image`` encodings read, as (channels, channel order of the RGB output).
IMAGE_ENCODINGS = {"rgb8": (3, (0, 1, 2)), "bgr8": (3, (2, 1, 0)), "rgba8": (4, (0, 1, 2)),
                   "bgra8": (4, (2, 1, 0)), "mono8": (1, (0, 0, 0)), "8uc1": (1, (0, 0, 0)),
                   "8uc3": (3, (2, 1, 0))}  # OpenCV's 8UC3 is BGR
#: ``sensor_msgs/CompressedImage`` formats read (``format`` holds one of these words, e.g. ``bgr8; jpeg compressed bgr8``).
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")

NS_PER_S = 1_000_000_000


class MessageError(ValueError):
    """A message that decodes but cannot be converted (unsupported encoding, missing fields, bad sizes)."""


@functools.lru_cache(maxsize=1)
def typestore():
    """The ROS 2 Humble type store of ``rosbags`` (built once)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def msg_type(name: str):
    """The ``rosbags`` dataclass of message type ``name`` (e.g. :data:`POINTCLOUD2`)."""
    return typestore().types[name]


def serialize(msg) -> bytes:
    """CDR bytes of a message (its type is the message's ``__msgtype__``)."""
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


def deserialize(raw: bytes | memoryview, msgtype: str):
    """The message of type ``msgtype`` in CDR bytes ``raw``; raises on corrupt data."""
    return typestore().deserialize_cdr(raw, msgtype)


# ------------------------------------------------------------------------------ time and headers


def stamp_ns(stamp) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time``."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def time_msg(ns: int):
    """``builtin_interfaces/Time`` of ``ns`` nanoseconds (>= 0)."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return msg_type("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)


def header_msg(ns: int, frame_id: str):
    """``std_msgs/Header`` at ``ns`` nanoseconds in ``frame_id``."""
    return msg_type("std_msgs/msg/Header")(stamp=time_msg(ns), frame_id=frame_id)


# ------------------------------------------------------------------------------ point clouds


def cloud_columns(msg) -> tuple[str, ...]:
    """Columns :func:`cloud_to_points` returns for ``msg``: x, y, z, intensity, then the other fields
    in offset order (a field of ``count`` k > 1 becomes ``name_0 .. name_{k-1}``).

    Raises :class:`MessageError` when x, y or z is missing, a datatype is unknown or the data is
    shorter than ``height * row_step``.
    """
    names = [f.name for f in msg.fields]
    missing = [c for c in "xyz" if c not in names]
    if missing:
        raise MessageError(f"PointCloud2 has no field(s) {missing} (fields: {names})")
    for f in msg.fields:
        if f.datatype not in POINT_FIELD_DTYPES:
            raise MessageError(f"PointCloud2 field {f.name!r} has unknown datatype {f.datatype}")
        if f.offset + np.dtype(POINT_FIELD_DTYPES[f.datatype]).itemsize * max(int(f.count), 1) > msg.point_step:
            raise MessageError(f"PointCloud2 field {f.name!r} (offset {f.offset}) runs past point_step {msg.point_step}")
    if msg.height * msg.row_step > len(msg.data) or msg.width * msg.point_step > msg.row_step:
        raise MessageError(f"PointCloud2 data is {len(msg.data)} bytes; height {msg.height} x row_step "
                           f"{msg.row_step} (width {msg.width} x point_step {msg.point_step}) do not fit")
    rest = []
    for f in sorted(msg.fields, key=lambda f: f.offset):
        if f.name in ("x", "y", "z", "intensity"):
            continue
        rest += [f.name] if f.count <= 1 else [f"{f.name}_{k}" for k in range(f.count)]
    return ("x", "y", "z", "intensity", *rest)


def cloud_to_points(msg) -> tuple[np.ndarray, tuple[str, ...]]:
    """The points of a ``sensor_msgs/PointCloud2``.

    Returns
    -------
    points : (N, C) float32
        One row per point with finite x, y, z (NaN rows of organised clouds dropped), in the
        cloud's ``header.frame_id``; intensity 0 when the cloud has none.
    columns : tuple of C str
        :func:`cloud_columns`.
    """
    columns = cloud_columns(msg)
    order = ">" if msg.is_bigendian else "<"
    raw = np.asarray(msg.data, np.uint8)[:msg.height * msg.row_step].reshape(msg.height, msg.row_step)
    rows = raw[:, :msg.width * msg.point_step].reshape(msg.height * msg.width, msg.point_step)   # (N, point_step) bytes
    by_name = {f.name: f for f in msg.fields}
    out = np.zeros((len(rows), len(columns)), np.float32)
    for name, f in by_name.items():
        dt = np.dtype(POINT_FIELD_DTYPES[f.datatype]).newbyteorder(order)
        count = max(int(f.count), 1)
        chunk = np.ascontiguousarray(rows[:, f.offset:f.offset + dt.itemsize * count])
        values = chunk.view(dt).reshape(len(rows), count).astype(np.float32)
        if name in ("x", "y", "z", "intensity") or count == 1:
            out[:, columns.index(name)] = values[:, 0]
        else:
            for k in range(count):
                out[:, columns.index(f"{name}_{k}")] = values[:, k]
    keep = np.isfinite(out[:, :3]).all(axis=1)
    return out[keep], columns


def points_to_cloud(points: np.ndarray, columns, ns: int, frame_id: str):
    """A ``sensor_msgs/PointCloud2`` of ``points`` (N, C) float32, one FLOAT32 field per column.

    ``columns`` names the C columns (x, y, z first); little-endian, unorganised (height 1), dense.
    """
    pts = np.ascontiguousarray(points, dtype="<f4")
    if pts.ndim != 2 or pts.shape[1] != len(columns):
        raise MessageError(f"points of shape {pts.shape} do not match the {len(columns)} columns {list(columns)}")
    field = msg_type("sensor_msgs/msg/PointField")
    fields = [field(name=c, offset=4 * i, datatype=POINT_FIELD_FLOAT32, count=1) for i, c in enumerate(columns)]
    step = 4 * len(columns)
    return msg_type(POINTCLOUD2)(header=header_msg(ns, frame_id), height=1, width=len(pts), fields=fields,
                                 is_bigendian=False, point_step=step, row_step=step * len(pts),
                                 data=pts.view(np.uint8).reshape(-1), is_dense=True)


# ------------------------------------------------------------------------------ images


def check_image(msg) -> None:
    """Raise :class:`MessageError` unless ``msg`` (Image or CompressedImage) can be converted."""
    if msg.__msgtype__ == COMPRESSED_IMAGE:
        compressed_kind(msg)
        return
    enc = msg.encoding.lower()
    if enc not in IMAGE_ENCODINGS:
        raise MessageError(f"unsupported Image encoding {msg.encoding!r} (supported: {', '.join(IMAGE_ENCODINGS)})")
    channels = IMAGE_ENCODINGS[enc][0]
    if msg.step < msg.width * channels or len(msg.data) < msg.height * msg.step:
        raise MessageError(f"Image {msg.width}x{msg.height} {msg.encoding}: {len(msg.data)} bytes, step "
                           f"{msg.step} do not fit")


def image_to_rgb(msg) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a ``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8; alpha dropped,
    grey replicated); row padding (``step``) is honoured."""
    check_image(msg)
    channels, order = IMAGE_ENCODINGS[msg.encoding.lower()]
    raw = np.asarray(msg.data, np.uint8)[:msg.height * msg.step].reshape(msg.height, msg.step)
    pix = raw[:, :msg.width * channels].reshape(msg.height, msg.width, channels)   # (H, W, channels)
    return np.ascontiguousarray(pix[:, :, list(order)])


def compressed_kind(msg) -> str:
    """``'jpeg'`` or ``'png'``: the codec a ``sensor_msgs/CompressedImage`` names in ``format``."""
    fmt = msg.format.lower()
    for word in COMPRESSED_FORMATS:
        if word in fmt:
            return "png" if word == "png" else "jpeg"
    raise MessageError(f"unsupported CompressedImage format {msg.format!r} (supported: jpeg, png)")


def compressed_to_rgb(msg) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a jpeg or png ``sensor_msgs/CompressedImage``."""
    from PIL import Image, UnidentifiedImageError

    compressed_kind(msg)
    try:
        with Image.open(io.BytesIO(np.asarray(msg.data, np.uint8).tobytes())) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise MessageError(f"CompressedImage ({msg.format!r}) does not decode: {exc}") from None


def jpeg_to_compressed(data: bytes, ns: int, frame_id: str):
    """A ``sensor_msgs/CompressedImage`` carrying the JPEG file bytes ``data`` unchanged."""
    return msg_type(COMPRESSED_IMAGE)(header=header_msg(ns, frame_id), format="jpeg",
                                      data=np.frombuffer(data, np.uint8))


def camera_info_to_calibration(msg) -> dict:
    """``{"K": 3x3 list, "width", "height"}`` of a ``sensor_msgs/CameraInfo`` (pixels)."""
    k = np.asarray(msg.k, np.float64).reshape(3, 3)
    return {"K": k.tolist(), "width": int(msg.width), "height": int(msg.height)}


def camera_info_msg(K: np.ndarray, width: int, height: int, ns: int, frame_id: str):
    """A ``sensor_msgs/CameraInfo`` of an undistorted pinhole camera, ``K`` (3, 3) in pixels."""
    K = np.asarray(K, np.float64).reshape(3, 3)
    p = np.zeros((3, 4))
    p[:, :3] = K
    roi = msg_type("sensor_msgs/msg/RegionOfInterest")(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return msg_type(CAMERA_INFO)(header=header_msg(ns, frame_id), height=int(height), width=int(width),
                                 distortion_model="plumb_bob", d=np.zeros(5), k=K.reshape(-1), r=np.eye(3).reshape(-1),
                                 p=p.reshape(-1), binning_x=0, binning_y=0, roi=roi)


# ------------------------------------------------------------------------------ transforms


def xyz_quat(translation, rotation) -> tuple[np.ndarray, np.ndarray]:
    """(3,) position and (4,) unit quaternion (x, y, z, w) of ``geometry_msgs`` Vector3/Point + Quaternion."""
    p = np.array([translation.x, translation.y, translation.z], np.float64)
    q = np.array([rotation.x, rotation.y, rotation.z, rotation.w], np.float64)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-9:
        raise MessageError(f"quaternion {q.tolist()} is not a rotation")
    return p, q / n


def transform_msg(position, quat):
    """``geometry_msgs/Transform`` of position (3,) and quaternion (4,) (x, y, z, w)."""
    vec = msg_type("geometry_msgs/msg/Vector3")(x=float(position[0]), y=float(position[1]), z=float(position[2]))
    rot = msg_type("geometry_msgs/msg/Quaternion")(x=float(quat[0]), y=float(quat[1]), z=float(quat[2]),
                                                   w=float(quat[3]))
    return msg_type("geometry_msgs/msg/Transform")(translation=vec, rotation=rot)


def transform_stamped_msg(ns: int, parent: str, child: str, position, quat):
    """``geometry_msgs/TransformStamped``: the pose of ``child`` in ``parent`` at ``ns``."""
    return msg_type("geometry_msgs/msg/TransformStamped")(header=header_msg(ns, parent), child_frame_id=child,
                                                          transform=transform_msg(position, quat))
