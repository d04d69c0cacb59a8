"""Which topics of a ROS 2 bag feed a recording: the lidar, the odometry, the cameras, TF.

Topics are recognised by message type.  One ``sensor_msgs/PointCloud2`` topic makes the frames (an
error when there are none, or several and ``--topics`` does not choose); one ``nav_msgs/Odometry``
topic, if any, gives the poses; image topics become cameras by keywords in their names
(:data:`CAMERA_KEYWORDS`; a lone image topic is ``CAM_FRONT``), which ``--camera-topic`` overrides;
every ``tf2_msgs/TFMessage`` topic (``/tf``, ``/tf_static``) is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vlwm.io import rosbag_messages as rm

#: Topic keywords (topic lower-cased, non-alphanumerics read as ``_``) -> camera names, most specific first.
CAMERA_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("front_left", "CAM_FRONT_LEFT"), ("left_front", "CAM_FRONT_LEFT"),
    ("front_right", "CAM_FRONT_RIGHT"), ("right_front", "CAM_FRONT_RIGHT"),
    ("back_left", "CAM_BACK_LEFT"), ("rear_left", "CAM_BACK_LEFT"), ("left_back", "CAM_BACK_LEFT"),
    ("back_right", "CAM_BACK_RIGHT"), ("rear_right", "CAM_BACK_RIGHT"), ("right_back", "CAM_BACK_RIGHT"),
    ("front", "CAM_FRONT"), ("back", "CAM_BACK"), ("rear", "CAM_BACK"),
)
CAMERA_NAME = re.compile(r"^CAM_[A-Z0-9_]+$")    #: what a camera name looks like (image files NNNNNN_<name>.jpg)
IMAGE_TYPES = (rm.IMAGE, rm.COMPRESSED_IMAGE)


class BagImportError(ValueError):
    """The bag cannot be imported (unreadable, no lidar, no pose source, bad options)."""


@dataclass
class TopicPlan:
    """Which topics feed what: one lidar topic, an optional odometry topic, camera name -> image topic."""

    lidar: str
    odometry: str | None
    cameras: dict[str, str]
    camera_info: tuple[str, ...]
    tf: tuple[str, ...]
    notes: list[str] = field(default_factory=list)


def camera_for_topic(topic: str) -> str | None:
    """The camera name a topic's keywords suggest (``/cam_front_left/image/compressed`` ->
    ``CAM_FRONT_LEFT``), or None."""
    words = "_" + re.sub(r"[^a-z0-9]+", "_", topic.lower()).strip("_") + "_"
    for word, name in CAMERA_KEYWORDS:
        if f"_{word}_" in words:
            return name
    return None


def plan_topics(bag: Path, available: dict[str, str | None], topics: tuple[str, ...] | None = None,
                camera_topics: dict[str, str] | None = None) -> TopicPlan:
    """Choose the topics to read.

    Parameters
    ----------
    bag : Path
        The bag (named in errors).
    available : dict
        Topic -> message type, of the whole bag.
    topics : tuple of str, optional
        Sensor topics to restrict to (``--topics``); TF topics are always read.
    camera_topics : dict, optional
        Camera name -> image topic, over the keyword mapping (``--camera-topic``).
    """
    listing = ", ".join(f"{t} ({m})" for t, m in sorted(available.items())) or "none"
    if topics:
        missing = [t for t in topics if t not in available]
        if missing:
            raise BagImportError(f"{bag}: --topics {missing} not in the bag (topics: {listing})")
    selected = {t: m for t, m in available.items() if not topics or t in topics}

    def of_type(*types):
        return sorted(t for t, m in selected.items() if m in types)

    where = " among --topics" if topics else ""
    lidar = of_type(rm.POINTCLOUD2)
    if not lidar:
        raise BagImportError(f"{bag}: no lidar topic (sensor_msgs/msg/PointCloud2){where}; topics: {listing}")
    if len(lidar) > 1:
        raise BagImportError(f"{bag}: several PointCloud2 topics {lidar}: name the lidar to use with --topics")
    odom = of_type(rm.ODOMETRY)
    if len(odom) > 1:
        raise BagImportError(f"{bag}: several Odometry topics {odom}: name the one to use with --topics")
    notes = []
    cameras: dict[str, str] = {}
    images = of_type(*IMAGE_TYPES)
    for topic in images:
        name = camera_for_topic(topic) or ("CAM_FRONT" if len(images) == 1 else None)
        if name is None:
            notes.append(f"image topic {topic} matches no camera name (use --camera-topic NAME={topic}): ignored")
        elif name in cameras:       # e.g. /front/image_raw and /front/image_raw/compressed: keep the JPEGs
            keep = topic if available[topic] == rm.COMPRESSED_IMAGE else cameras[name]
            drop = cameras[name] if keep == topic else topic
            cameras[name] = keep
            notes.append(f"image topics {keep} and {drop} both look like {name}: using {keep}")
        else:
            cameras[name] = topic
    for name, topic in (camera_topics or {}).items():
        if not CAMERA_NAME.match(name):
            raise BagImportError(f"--camera-topic {name}={topic}: camera names look like CAM_FRONT (CAM_[A-Z0-9_]+)")
        if available.get(topic) not in IMAGE_TYPES:
            raise BagImportError(f"{bag}: --camera-topic {name}={topic}: not an Image or CompressedImage topic "
                                 f"(topics: {listing})")
        cameras = {n: t for n, t in cameras.items() if t != topic and n != name}
        cameras[name] = topic
    tf = tuple(sorted(t for t, m in available.items() if m == rm.TF_MESSAGE))
    return TopicPlan(lidar[0], odom[0] if odom else None, dict(sorted(cameras.items())),
                     tuple(of_type(rm.CAMERA_INFO)), tf, notes)
