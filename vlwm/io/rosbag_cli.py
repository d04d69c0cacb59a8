"""``vlwm import-bag`` and ``vlwm export-bag``: argument parsing for the ROS 2 bag converters.

    vlwm import-bag BAG --out DIR [--topics T ...] [--camera-topic CAM_FRONT=/topic ...]
    vlwm export-bag RECORDING --out BAG [--storage sqlite3|mcap]

Details: docs/rosbag.md.
"""

from __future__ import annotations

import argparse
import sys


def add_rosbag_parsers(subparsers) -> None:
    """Register the ``import-bag`` and ``export-bag`` verbs on a ``vlwm`` subparsers object."""
    from vlwm.io.rosbag_import import DEFAULT_IMAGE_TOLERANCE_S

    i = subparsers.add_parser("import-bag", help="convert a ROS 2 bag (.db3 or MCAP) into a recording folder",
                              description="Convert a ROS 2 bag (PointCloud2, Image/CompressedImage, Odometry, TF) "
                                          "into a recording in the layout `vlwm simulate` writes: one frame per "
                                          "lidar message, poses interpolated to its stamps.")
    i.add_argument("bag", help="rosbag2 folder, or its .db3 / .mcap file")
    i.add_argument("--out", required=True, help="recording folder to write (e.g. data/ros/rover_lab)")
    i.add_argument("--topics", nargs="+", metavar="TOPIC",
                   help="sensor topics to use (lidar, odometry, images, camera_info); default: found by message type")
    i.add_argument("--camera-topic", action="append", default=[], metavar="CAM=TOPIC",
                   help="map an image topic to a camera, e.g. CAM_FRONT=/front/image_raw (repeatable)")
    i.add_argument("--agent", choices=("drone", "rover"), default="rover", help="agent type of the recording")
    i.add_argument("--world-frame", help="world frame of the poses (default: the odometry's, else map, else odom)")
    i.add_argument("--body-frame", help="body frame (default: the odometry's child, else base_link)")
    i.add_argument("--image-tolerance", type=float, default=DEFAULT_IMAGE_TOLERANCE_S, metavar="S",
                   help="largest image-to-lidar stamp difference, seconds")
    i.add_argument("--overwrite", action="store_true", help="replace an existing recording at --out")
    i.add_argument("--quiet", action="store_true", help="no progress bars")
    i.set_defaults(func=cmd_import_bag)

    e = subparsers.add_parser("export-bag", help="write a recording as a ROS 2 bag (PointCloud2, images, odometry, TF)")
    e.add_argument("recording", help="recording folder (with poses/, lidar/, images/, sequence.json)")
    e.add_argument("--out", required=True, help="bag folder to create")
    e.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="rosbag2 storage plugin")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_export_bag)


def _camera_topics(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, topic = pair.partition("=")
        if not sep or not name or not topic:
            raise SystemExit(f"--camera-topic expects CAM_NAME=/topic, got {pair!r}")
        out[name] = topic
    return out


def cmd_import_bag(args: argparse.Namespace) -> int:
    from vlwm.io.rosbag_import import ImportOptions, import_bag

    options = ImportOptions(topics=tuple(args.topics) if args.topics else None,
                            camera_topics=_camera_topics(args.camera_topic), agent=args.agent,
                            world_frame=args.world_frame, body_frame=args.body_frame,
                            image_tolerance_s=args.image_tolerance, overwrite=args.overwrite, progress=not args.quiet)
    report = import_bag(args.bag, args.out, options)
    for line in report.notes:
        print(f"note: {line}", file=sys.stderr)
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_export_bag(args: argparse.Namespace) -> int:
    from vlwm.io.rosbag_export import export_bag

    report = export_bag(args.recording, args.out, storage=args.storage, progress=not args.quiet)
    for line in report.notes:
        print(f"note: {line}", file=sys.stderr)
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(report.summary())
    return 0
