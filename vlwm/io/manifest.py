"""``sequence.json``: the typed manifest of a recording, read and written here only.

The manifest says what a recording is: the vehicle (agent_type, vehicle_id), where it came from
(the scene and its geo-origin, or the bag it was imported from), the seed, the rates, the pose
convention, the lidar columns, every sensor's calibration (``T_body_sensor`` 4x4 sensor -> body;
cameras also ``K`` 3x3 in pixels of the OpenCV optical frame, width, height), the mission, the
traffic, and the committed frames.  Keys, in file order::

    layout_version  int         always
    software        str         "vlwm <version>"
    agent_type      str         "drone" | "rover"
    created         str         ISO time the recording started (local time)
    vehicle_id      str
    source          object      imported recordings: the bag, its frames and topics
    scene           object      source, file (path relative to the folder, or null), geo_origin, label_names,
                                generator
    seed            int
    rates           object      frame_rate_hz, lidar_rate_hz (Hz, null when unknown), physics_dt (s)
    pose_convention str
    lidar_columns   [str]       names of the lidar files' columns
    sensors         object      name -> {type, T_body_sensor, [K, width, height], more keys kept as they are}
    cameras         [str]       camera names, in rig order
    mission         object      the mission (vlwm.sim.missions)
    traffic         object|null the traffic config (vlwm.sim.traffic.TrafficConfig), null = none
    traffic_first_instance  int|null  instance ids from this one up are traffic actors
    sim             object      the simulator config
    mavlink         object      MAVLink-driven recordings: endpoint, missions, items reached
    status          str         "recording" | "complete" | "interrupted"; always
    num_frames      int         always
    frames          [object]    {"index": int (from 1), "timestamp": float s}; always

Reading checks every key present: a malformed one, a missing required one (``layout_version``,
``status``, ``num_frames``, ``frames``) or an unknown one is a :class:`ManifestError` naming the
file and the key.  Optional keys that are absent read as None, and the accessors that need them
(:meth:`Manifest.sensor`, :meth:`Manifest.lidar_mount`) raise the same way: nothing is silently
replaced by a default (a missing lidar mount is never the identity).  Writing gives the same keys,
in the same order, with the same values as were read (a round trip keeps the file's content).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlwm.io.atomic import atomic_write_json
from vlwm.io.recording import AGENT_TYPES, MANIFEST

STATUSES = ("recording", "complete", "interrupted")
SENSOR_TYPES = ("lidar", "camera")
LIDAR_SENSOR = "LIDAR"
"""Name of the lidar's entry in ``sensors``."""


class ManifestError(ValueError):
    """A ``sequence.json`` that is absent where needed, unreadable, or has a missing or malformed key."""


# ------------------------------------------------------------------------------ field checks


class _Doc:
    """A JSON object being read: typed getters whose errors name the file and the dotted key."""

    def __init__(self, doc, file: Path | str, prefix: str = ""):
        self.file, self.prefix = file, prefix
        if not isinstance(doc, dict):
            raise self.error(prefix.rstrip(".") or "(top level)", f"must be a JSON object, got {_kind(doc)}")
        self.doc = doc

    def error(self, key: str, problem: str) -> ManifestError:
        return ManifestError(f"{self.file}: {self.prefix}{key} {problem}")

    def has(self, key: str) -> bool:
        return key in self.doc

    def get(self, key: str, check, required: bool = False, nullable: bool = False):
        if key not in self.doc:
            if required:
                raise self.error(key, "is missing")
            return None
        value = self.doc[key]
        if value is None and nullable:
            return None
        problem = check(value)
        if problem:
            raise self.error(key, f"{problem} (got {json.dumps(value)[:80]})")
        return value

    def sub(self, key: str) -> "_Doc":
        return _Doc(self.doc[key], self.file, f"{self.prefix}{key}.")

    def unknown(self, known) -> None:
        extra = [k for k in self.doc if k not in known]
        if extra:
            raise self.error(extra[0], f"is not a manifest key (known: {', '.join(known)})")


def _kind(v) -> str:
    return "null" if v is None else type(v).__name__


def _is_int(v) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) else "must be an integer"


def _is_number(v) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return None if ok else "must be a finite number"


def _is_positive(v) -> str | None:
    return _is_number(v) or (None if v > 0 else "must be positive")


def _is_str(v) -> str | None:
    return None if isinstance(v, str) else "must be a string"


def _is_obj(v) -> str | None:
    return None if isinstance(v, dict) else "must be a JSON object"


def _is_str_list(v) -> str | None:
    return None if isinstance(v, list) and all(isinstance(s, str) for s in v) else "must be a list of strings"


def _one_of(options):
    return lambda v: None if v in options else f"must be one of {list(options)}"


def _matrix(shape):
    def check(v) -> str | None:
        try:
            m = np.asarray(v, np.float64)
        except (TypeError, ValueError):
            m = None
        if m is None or m.shape != shape or not np.all(np.isfinite(m)) or not isinstance(v, list):
            return f"must be a {shape[0]}x{shape[1]} list of finite numbers"
        return None
    return check


# ------------------------------------------------------------------------------ sections


@dataclass
class FrameEntry:
    """One committed frame: its number (from 1) and time (s since the recording started)."""

    index: int
    timestamp: float

    def to_json(self) -> dict:
        return {"index": self.index, "timestamp": self.timestamp}


@dataclass
class Rates:
    """Recording rates; None where the recording does not know one."""

    frame_rate_hz: float | None
    """Frames per second (Hz)."""
    lidar_rate_hz: float | None = None
    """Lidar sweeps per second (Hz)."""
    physics_dt: float | None = None
    """Simulator control-loop step (s); simulated recordings only."""

    def to_json(self) -> dict:
        out = {"frame_rate_hz": self.frame_rate_hz, "lidar_rate_hz": self.lidar_rate_hz}
        if self.physics_dt is not None:
            out["physics_dt"] = self.physics_dt
        return out

    @classmethod
    def from_doc(cls, d: _Doc) -> "Rates":
        d.unknown(("frame_rate_hz", "lidar_rate_hz", "physics_dt"))
        return cls(d.get("frame_rate_hz", _is_positive, nullable=True),
                   d.get("lidar_rate_hz", _is_positive, nullable=True), d.get("physics_dt", _is_positive))


@dataclass
class SceneInfo:
    """The scene a simulated recording was made in."""

    source: str
    """Where the scene came from (``procedural``, ``plateau``, …)."""
    file: str | None
    """The scene file (.npz), relative to the recording folder or absolute; None when not saved."""
    geo_origin: dict | None = None
    """The local ENU frame's geo-origin (:meth:`vlwm.world.geo.GeoOrigin.to_dict`)."""
    label_names: tuple[str, ...] | None = None
    """The scene's label space (names by label id)."""
    generator: dict | None = None
    """The generator's config and version (procedural scenes)."""

    def to_json(self) -> dict:
        out = {"source": self.source, "file": self.file}
        for key in ("geo_origin", "label_names", "generator"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "label_names" else value
        return out

    @classmethod
    def from_doc(cls, d: _Doc) -> "SceneInfo":
        d.unknown(("source", "file", "geo_origin", "label_names", "generator"))
        names = d.get("label_names", _is_str_list)
        return cls(d.get("source", _is_str, required=True), d.get("file", _is_str, required=True, nullable=True),
                   d.get("geo_origin", _is_obj), None if names is None else tuple(names), d.get("generator", _is_obj))


@dataclass(eq=False)
class SensorCalibration:
    """One ``sensors`` entry.

    ``T_body_sensor`` (4, 4) float64 maps sensor-frame points into the body frame (cameras: the
    OpenCV optical frame, x right, y down, z forward).  Cameras have ``K`` (3, 3) float64 pixels,
    ``width`` and ``height``.  ``details`` keeps the entry's other keys (lidar pattern, topics,
    optical_frame, …) as they are, in file order.
    """

    type: str
    T_body_sensor: np.ndarray
    K: np.ndarray | None = None
    width: int | None = None
    height: int | None = None
    details: dict = field(default_factory=dict)

    def __eq__(self, other) -> bool:
        return isinstance(other, SensorCalibration) and self.to_json() == other.to_json()

    def to_json(self) -> dict:
        out: dict = {"type": self.type, "T_body_sensor": self.T_body_sensor.tolist()}
        if self.type == "camera":
            out.update(K=self.K.tolist(), width=self.width, height=self.height)
        return {**out, **self.details}

    @classmethod
    def from_doc(cls, d: _Doc) -> "SensorCalibration":
        kind = d.get("type", _one_of(SENSOR_TYPES), required=True)
        T = np.asarray(d.get("T_body_sensor", _matrix((4, 4)), required=True), np.float64)
        if not np.allclose(T[3], (0, 0, 0, 1)):
            raise d.error("T_body_sensor", "must be a rigid transform (last row 0, 0, 0, 1)")
        K = width = height = None
        if kind == "camera":
            K = np.asarray(d.get("K", _matrix((3, 3)), required=True), np.float64)
            width = d.get("width", lambda v: _is_int(v) or (None if v > 0 else "must be positive"), required=True)
            height = d.get("height", lambda v: _is_int(v) or (None if v > 0 else "must be positive"), required=True)
        own = ("type", "T_body_sensor") + (("K", "width", "height") if kind == "camera" else ())
        return cls(kind, T, K, width, height, {k: v for k, v in d.doc.items() if k not in own})


# ------------------------------------------------------------------------------ the manifest


_SECTION_KEYS = ("software", "agent_type", "created", "vehicle_id", "source", "scene", "seed", "rates",
                 "pose_convention", "lidar_columns", "sensors", "cameras", "mission", "traffic",
                 "traffic_first_instance", "sim", "mavlink")
KEYS = ("layout_version", *_SECTION_KEYS, "status", "num_frames", "frames")
"""Every manifest key, in file order."""
_ALWAYS_WRITTEN = ("traffic", "traffic_first_instance")
"""Optional keys written even when None (null = 'none', e.g. no traffic)."""


@dataclass
class Manifest:
    """The content of one ``sequence.json`` (see the module docstring for each key)."""

    layout_version: int
    status: str
    num_frames: int
    frames: list[FrameEntry]
    software: str | None = None
    agent_type: str | None = None
    created: str | None = None
    vehicle_id: str | None = None
    source: dict | None = None
    scene: SceneInfo | None = None
    seed: int | None = None
    rates: Rates | None = None
    pose_convention: str | None = None
    lidar_columns: tuple[str, ...] | None = None
    sensors: dict[str, SensorCalibration] | None = None
    cameras: tuple[str, ...] | None = None
    mission: dict | None = None
    traffic: dict | None = None
    traffic_first_instance: int | None = None
    sim: dict | None = None
    mavlink: dict | None = None
    file: Path | None = field(default=None, compare=False)
    """The file it was read from (for error messages); not written."""

    # -------------------------------------------------------------------- reading, writing

    @classmethod
    def from_json(cls, doc, file: str | os.PathLike) -> "Manifest":
        """Parse a manifest document; ``file`` names it in errors (:class:`ManifestError`)."""
        d = _Doc(doc, file)
        d.unknown(KEYS)
        status = d.get("status", _one_of(STATUSES), required=True)
        num = d.get("num_frames", lambda v: _is_int(v) or (None if v >= 0 else "must be >= 0"), required=True)
        frames = []
        for i, f in enumerate(d.get("frames", lambda v: None if isinstance(v, list) else "must be a list",
                                    required=True)):
            fd = _Doc(f, file, f"frames[{i}].")
            fd.unknown(("index", "timestamp"))
            frames.append(FrameEntry(fd.get("index", lambda v: _is_int(v) or (None if v >= 1 else "must be >= 1"),
                                            required=True), fd.get("timestamp", _is_number, required=True)))
        sensors = None
        if d.get("sensors", _is_obj) is not None:
            sensors = {name: SensorCalibration.from_doc(d.sub("sensors").sub(name)) for name in d.doc["sensors"]}
        columns, cameras = d.get("lidar_columns", _is_str_list), d.get("cameras", _is_str_list)
        return cls(
            layout_version=d.get("layout_version", lambda v: _is_int(v) or (None if v >= 1 else "must be >= 1"),
                                 required=True),
            status=status, num_frames=num, frames=frames,
            software=d.get("software", _is_str), agent_type=d.get("agent_type", _one_of(AGENT_TYPES)),
            created=d.get("created", _is_str), vehicle_id=d.get("vehicle_id", _is_str),
            source=d.get("source", _is_obj),
            scene=SceneInfo.from_doc(d.sub("scene")) if d.get("scene", _is_obj) is not None else None,
            seed=d.get("seed", _is_int),
            rates=Rates.from_doc(d.sub("rates")) if d.get("rates", _is_obj) is not None else None,
            pose_convention=d.get("pose_convention", _is_str),
            lidar_columns=None if columns is None else tuple(columns), sensors=sensors,
            cameras=None if cameras is None else tuple(cameras),
            mission=d.get("mission", _is_obj), traffic=d.get("traffic", _is_obj, nullable=True),
            traffic_first_instance=d.get("traffic_first_instance", _is_int, nullable=True),
            sim=d.get("sim", _is_obj), mavlink=d.get("mavlink", _is_obj), file=Path(file))

    def to_json(self) -> dict:
        """The ``sequence.json`` document: keys in :data:`KEYS` order, absent ones left out."""
        out: dict = {"layout_version": self.layout_version}
        for key in _SECTION_KEYS:
            value = getattr(self, key)
            if value is None and key not in _ALWAYS_WRITTEN:
                continue
            if key in ("scene", "rates"):
                value = value.to_json()
            elif key == "sensors":
                value = {name: s.to_json() for name, s in value.items()}
            elif key in ("lidar_columns", "cameras"):
                value = list(value)
            out[key] = value
        out.update(status=self.status, num_frames=self.num_frames, frames=[f.to_json() for f in self.frames])
        return out

    def write(self, seq: str | os.PathLike) -> Path:
        """Write ``<seq>/sequence.json`` atomically; returns its path."""
        return atomic_write_json(Path(seq) / MANIFEST, self.to_json())

    # -------------------------------------------------------------------- what consumers need

    def error(self, key: str, problem: str) -> ManifestError:
        """A :class:`ManifestError` naming this manifest's file and ``key``."""
        return ManifestError(f"{self.file or MANIFEST}: {key} {problem}")

    def sensor(self, name: str) -> SensorCalibration:
        """The calibration of sensor ``name``; a ManifestError naming the file when it has none."""
        if not self.sensors or name not in self.sensors:
            raise self.error(f"sensors.{name}", f"is missing: the manifest has no calibration of {name} "
                                                f"(sensors: {sorted(self.sensors or {}) or 'none'})")
        return self.sensors[name]

    def lidar_mount(self) -> np.ndarray:
        """(4, 4) float64 ``T_body_lidar``: lidar-frame points -> body frame (``sensors.LIDAR.T_body_sensor``)."""
        return self.sensor(LIDAR_SENSOR).T_body_sensor.copy()

    def calibrated_cameras(self) -> dict[str, SensorCalibration]:
        """The camera entries of ``sensors`` (name -> calibration), in file order."""
        return {n: s for n, s in (self.sensors or {}).items() if s.type == "camera"}


def read_manifest(seq: str | os.PathLike) -> Manifest | None:
    """``<seq>/sequence.json`` parsed, None when the folder has none (data from other tools).

    Raises :class:`ManifestError` naming the file (and key) for an unreadable or malformed one.
    """
    path = Path(seq) / MANIFEST
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: damaged manifest, not readable JSON ({exc})") from None
    return Manifest.from_json(doc, path)


def load_manifest(seq: str | os.PathLike) -> Manifest:
    """Like :func:`read_manifest`, but a folder without ``sequence.json`` is an error too."""
    manifest = read_manifest(seq)
    if manifest is None:
        raise ManifestError(f"{Path(seq) / MANIFEST}: no such file: {seq} is not a recording folder written by "
                            f"vlwm (its manifest describes the vehicle and sensors)")
    return manifest


__all__ = ["FrameEntry", "KEYS", "LIDAR_SENSOR", "Manifest", "ManifestError", "Rates", "STATUSES", "SceneInfo",
           "SensorCalibration", "load_manifest", "read_manifest"]
