"""Export a :class:`Scene` as meshes (OBJ + MTL, GLB, COLLADA) and as a Gazebo (gz-sim) world.

Frames and units: every file keeps the scene's local ENU frame (x east, y north, z up, metres);
OBJ and COLLADA store it as is (COLLADA says ``Z_UP``), GLB stores the ENU vertices under one
root node whose matrix turns them into glTF's y-up frame (:data:`ENU_TO_GLTF`).

Semantics: triangles are grouped by occupancy label (``scene.classes``, the scene's label map),
one material per label coloured from :data:`vlwm.labels.OCC3D_PALETTE` — an OBJ ``usemtl`` group,
a GLB mesh/primitive, a COLLADA ``<triangles>`` element per label, each named after the label.

Gazebo: :func:`export_gazebo` writes an SDF 1.9 world with the systems ArduPilot's Gazebo plugin
worlds load (``ardupilot_gazebo/worlds/iris_runway.sdf``) plus air pressure and magnetometer, the
scene's geo-origin as ``<spherical_coordinates>``, and the city as one static model whose visual
and collision are the mesh; extra ``<include>``s (e.g. vehicles, :class:`WorldInclude`) and the physics
real-time factor can be given.  Every file is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO, Iterator, NamedTuple, Sequence

import numpy as np

from vlwm.io.atomic import atomic_open
from vlwm.labels import OCC3D_ID, OCC3D_PALETTE
from vlwm.world import sdf
from vlwm.world.scene import Scene

#: Mesh formats :func:`export_mesh` writes (file suffix = format).
MESH_FORMATS = ("obj", "glb", "dae")
#: Mesh formats gz-sim loads with its own loaders (gz-common OBJLoader / ColladaLoader).
GAZEBO_MESH_FORMATS = ("obj", "dae")
#: OBJ by default: gz-common reads it with tinyobjloader (fast, no XML), per-label materials come
#: from the .mtl, and it is the simplest format for other tools; DAE loads as well (Harmonic and
#: earlier), glTF only through assimp in recent releases.
DEFAULT_GAZEBO_MESH_FORMAT = "obj"
SDF_VERSION = "1.9"
#: Physics step (s) and real-time factor of ArduPilot's example worlds (SITL lock-steps on them).
PHYSICS_MAX_STEP_S = 0.001
REAL_TIME_FACTOR = 1.0
#: Standard gravity (m/s²), the value ArduPilot uses (GRAVITY_MSS).
STANDARD_GRAVITY = 9.80665
#: (filename, name) of the world systems ArduPilot's Gazebo plugin expects (sensors gets ogre2).
GZ_WORLD_SYSTEMS = (
    ("gz-sim-physics-system", "gz::sim::systems::Physics"),
    ("gz-sim-sensors-system", "gz::sim::systems::Sensors"),
    ("gz-sim-user-commands-system", "gz::sim::systems::UserCommands"),
    ("gz-sim-scene-broadcaster-system", "gz::sim::systems::SceneBroadcaster"),
    ("gz-sim-imu-system", "gz::sim::systems::Imu"),
    ("gz-sim-navsat-system", "gz::sim::systems::NavSat"),
    ("gz-sim-air-pressure-system", "gz::sim::systems::AirPressure"),
    ("gz-sim-magnetometer-system", "gz::sim::systems::Magnetometer"),
)
SENSORS_RENDER_ENGINE = "ogre2"
#: (4, 4) float64: local ENU (x east, y north, z up) -> glTF (x right, y up, z towards viewer).
ENU_TO_GLTF = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
#: Decimals written for coordinates and normals in text formats: 1 µm, below float32 resolution.
TEXT_DECIMALS = 6
#: Normal written for degenerate (zero-area) triangles, which have none.
DEGENERATE_NORMAL = (0.0, 0.0, 1.0)
#: Rows formatted per text chunk: bounds the temporary strings of very large meshes.
_CHUNK_ROWS = 200_000
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: Per label present: (label name, (n,) int64 face indices in scene order, (3,) uint8 RGB).
_Groups = list[tuple[str, np.ndarray, np.ndarray]]


class WorldInclude(NamedTuple):
    """One more model in the world: ``<include>`` of ``uri`` named ``name`` at ``pose``."""

    uri: str
    """``model://<folder>`` (resolved on GZ_SIM_RESOURCE_PATH) or a file path / URL."""
    name: str
    """Model name in the world (unique)."""
    pose: tuple[float, float, float, float, float, float]
    """x, y, z (m, local ENU world frame), roll, pitch, yaw (rad) of the model frame."""


# ------------------------------------------------------------------------------ labels


def label_colours(names: tuple[str, ...]) -> np.ndarray:
    """(C, 3) uint8 RGB of each label, from :data:`OCC3D_PALETTE` by label name.

    A label space with names outside Occ3D-nuScenes has no defined colours: that is an error.
    """
    unknown = [n for n in names if n not in OCC3D_ID]
    if unknown:
        raise ValueError(f"labels {unknown} have no colour in OCC3D_PALETTE (known: {list(OCC3D_ID)}); "
                         "export the scene under an Occ3D label map (Scene.with_label_map)")
    return OCC3D_PALETTE[[OCC3D_ID[n] for n in names]]


def _label_groups(scene: Scene) -> _Groups:
    """The scene's faces grouped by occupancy label, labels in id order (see :data:`_Groups`)."""
    if not scene.num_triangles:
        raise ValueError("the scene has no triangles: nothing to export")
    names = scene.label_map.names
    colours = label_colours(names)
    classes = scene.classes
    order = np.argsort(classes, kind="stable")
    counts = np.bincount(classes, minlength=len(names))
    groups = np.split(order, np.cumsum(counts)[:-1])
    return [(names[c], groups[c], colours[c]) for c in np.flatnonzero(counts)]


def _normals(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Distinct face normals ``(N, 3) float64`` and each face's index into them ``(F,) int64``."""
    n = scene.face_normals.astype(np.float64)
    n[~np.any(n, axis=1)] = DEGENERATE_NORMAL
    unique, inverse = np.unique(np.round(n, TEXT_DECIMALS) + 0.0, axis=0, return_inverse=True)  # +0: no -0.0
    return unique, inverse.reshape(-1)


# ------------------------------------------------------------------------------ file helpers


@contextlib.contextmanager
def _atomic_open(path: Path, binary: bool = False) -> Iterator[IO]:
    """Write ``path`` (its folder created) atomically through :func:`vlwm.io.atomic.atomic_open`;
    text files are UTF-8 with ``\n`` line ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (atomic_open(path) if binary else atomic_open(path, "w", encoding="utf-8", newline="\n")) as fh:
        yield fh


def _format_rows(row_format: str, rows: np.ndarray) -> Iterator[str]:
    """Text of ``rows`` (n, k) with one ``%``-format per row, vectorised in chunks (no per-row loop)."""
    rows = rows.reshape(len(rows), -1)
    for start in range(0, len(rows), _CHUNK_ROWS):
        block = rows[start:start + _CHUNK_ROWS]
        yield (row_format * len(block)) % tuple(block.ravel().tolist())


def _write_xml(path: Path, root: ET.Element, declaration: str = '<?xml version="1.0"?>') -> None:
    ET.indent(root, space="  ")
    with _atomic_open(path) as fh:
        fh.write(declaration + "\n")
        ET.ElementTree(root).write(fh, encoding="unicode", xml_declaration=False)
        fh.write("\n")


# ------------------------------------------------------------------------------ meshes


def export_mesh(scene: Scene, path: str | os.PathLike, format: str | None = None) -> Path:
    """Write the scene's triangles with one material per occupancy label.

    Parameters
    ----------
    scene : Scene
        Triangles in local ENU metres; labels from ``scene.classes``.
    path : str or Path
        Output file.  ``obj`` also writes ``<stem>.mtl`` beside it.
    format : {'obj', 'glb', 'dae'} or None
        Inferred from the suffix of ``path`` when None.

    Returns
    -------
    Path of the mesh file.

    OBJ: every scene vertex once (``v``, metres), distinct face normals (``vn``), then a ``g``/
    ``usemtl`` group per label.  GLB (trimesh): one mesh per label holding only its vertices, under
    a root node ``city`` with matrix :data:`ENU_TO_GLTF`; the geo-origin is in the scene extras.
    DAE: one geometry, one ``<triangles>`` per label, ``Z_UP``, metres.
    """
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if format is None:
        if suffix not in MESH_FORMATS:
            raise ValueError(f"{path}: cannot infer a mesh format from suffix {path.suffix!r}; "
                             f"use one of {['.' + f for f in MESH_FORMATS]} or pass format=")
        format = suffix
    format = format.lower()
    if format not in MESH_FORMATS:
        raise ValueError(f"unknown mesh format {format!r} for {path}; choose one of {list(MESH_FORMATS)}")
    if suffix in MESH_FORMATS and suffix != format:
        raise ValueError(f"{path}: suffix .{suffix} contradicts format={format!r}")
    groups = _label_groups(scene)
    {"obj": _write_obj, "glb": _write_glb, "dae": _write_dae}[format](scene, groups, path)
    return path


def _write_obj(scene: Scene, groups: _Groups, path: Path) -> None:
    mtl = path.with_suffix(".mtl")
    if re.search(r"\s", mtl.name):
        raise ValueError(f"{path}: OBJ file names must not contain whitespace (mtllib cannot name {mtl.name!r})")
    with _atomic_open(mtl) as fh:
        fh.write("# vlwm occupancy-label materials, colours from OCC3D_PALETTE\n")
        for name, _, rgb in groups:
            kd = sdf.vec(np.round(rgb / 255.0, 4))
            fh.write(f"\nnewmtl {name}\nKa {kd}\nKd {kd}\nKs 0.1 0.1 0.1\nNs 10\nd 1\nillum 2\n")
    normals, normal_of_face = _normals(scene)
    lat, lon, h = scene.geo.latlon()
    fp = f"%.{TEXT_DECIMALS}f"
    with _atomic_open(path) as fh:
        fh.write(f"# vlwm scene: {scene.num_triangles} triangles, {len(scene.vertices)} vertices\n"
                 f"# frame: local ENU metres (x east, y north, z up); origin at lat {lat:.9f} lon {lon:.9f} "
                 f"height {h:.3f} m (JGD2011, EPSG:{scene.geo.epsg} origin {list(scene.geo.origin)})\n"
                 f"mtllib {mtl.name}\n")
        fh.writelines(_format_rows(f"v {fp} {fp} {fp}\n", scene.vertices.astype(np.float64)))
        fh.writelines(_format_rows(f"vn {fp} {fp} {fp}\n", normals))
        for name, faces, _ in groups:
            fh.write(f"g {name}\nusemtl {name}\n")
            rows = np.empty((len(faces), 6), np.int64)    # (n, [a, na, b, nb, c, nc]), 1-based
            rows[:, 0::2] = scene.faces[faces] + 1
            rows[:, 1::2] = normal_of_face[faces, None] + 1
            fh.writelines(_format_rows("f %d//%d %d//%d %d//%d\n", rows))


def _write_glb(scene: Scene, groups: _Groups, path: Path) -> None:
    import trimesh
    from trimesh.visual import TextureVisuals
    from trimesh.visual.material import PBRMaterial

    out = trimesh.Scene()
    out.graph.update(frame_from=out.graph.base_frame, frame_to="city", matrix=ENU_TO_GLTF)
    for name, faces, rgb in groups:
        used, local = np.unique(scene.faces[faces], return_inverse=True)   # only this label's vertices
        material = PBRMaterial(name=name, baseColorFactor=np.r_[rgb, 255].astype(np.uint8),
                               metallicFactor=0.0, roughnessFactor=1.0, doubleSided=True)
        mesh = trimesh.Trimesh(scene.vertices[used], local.reshape(-1, 3), process=False,
                               visual=TextureVisuals(material=material))
        out.add_geometry(mesh, geom_name=name, node_name=name, parent_node_name="city")
    out.metadata.update({"frame": "local ENU metres (x east, y north, z up); node 'city' maps to glTF y-up",
                         "geo_origin": scene.geo.to_dict()})
    # No normals: glTF viewers must then shade flat, which is right for faceted city geometry.
    data = out.export(file_type="glb", include_normals=False)
    with _atomic_open(path, binary=True) as fh:
        fh.write(data)


def _write_dae(scene: Scene, groups: _Groups, path: Path) -> None:
    normals, normal_of_face = _normals(scene)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    root = ET.Element("COLLADA", {"xmlns": "http://www.collada.org/2005/11/COLLADASchema", "version": "1.4.1"})
    asset = sdf.sub(root, "asset")
    sdf.sub(sdf.sub(asset, "contributor"), "authoring_tool", "vlwm")
    sdf.sub(asset, "created", now)
    sdf.sub(asset, "modified", now)
    sdf.sub(asset, "unit", name="meter", meter="1")
    sdf.sub(asset, "up_axis", "Z_UP")

    effects, materials = sdf.sub(root, "library_effects"), sdf.sub(root, "library_materials")
    for name, _, rgb in groups:
        colour = sdf.vec(np.round(rgb / 255.0, 4)) + " 1"
        effect = sdf.sub(sdf.sub(effects, "effect", id=f"{name}-effect"), "profile_COMMON")
        phong = sdf.sub(sdf.sub(effect, "technique", sid="common"), "phong")
        sdf.sub(sdf.sub(phong, "ambient"), "color", colour, sid="ambient")
        sdf.sub(sdf.sub(phong, "diffuse"), "color", colour, sid="diffuse")
        sdf.sub(sdf.sub(phong, "specular"), "color", "0.1 0.1 0.1 1", sid="specular")
        material = sdf.sub(materials, "material", id=f"{name}-material", name=name)
        sdf.sub(material, "instance_effect", url=f"#{name}-effect")

    mesh = sdf.sub(sdf.sub(sdf.sub(root, "library_geometries"), "geometry", id="city-mesh", name="city"), "mesh")
    fp = f"%.{TEXT_DECIMALS}f "
    for sid, arr in (("positions", scene.vertices.astype(np.float64)), ("normals", normals)):
        source = sdf.sub(mesh, "source", id=f"city-{sid}")
        sdf.sub(source, "float_array", "".join(_format_rows(fp * 3, arr)).rstrip(), id=f"city-{sid}-array",
             count=str(arr.size))
        accessor = sdf.sub(sdf.sub(source, "technique_common"), "accessor", source=f"#city-{sid}-array",
                        count=str(len(arr)), stride="3")
        for axis in "XYZ":
            sdf.sub(accessor, "param", name=axis, type="float")
    sdf.sub(sdf.sub(mesh, "vertices", id="city-vertices"), "input", semantic="POSITION", source="#city-positions")
    for name, faces, _ in groups:
        tris = sdf.sub(mesh, "triangles", material=name, count=str(len(faces)))
        sdf.sub(tris, "input", semantic="VERTEX", source="#city-vertices", offset="0")
        sdf.sub(tris, "input", semantic="NORMAL", source="#city-normals", offset="1")
        rows = np.empty((len(faces), 6), np.int64)        # (n, [a, na, b, nb, c, nc]), 0-based
        rows[:, 0::2] = scene.faces[faces]
        rows[:, 1::2] = normal_of_face[faces, None]
        sdf.sub(tris, "p", "".join(_format_rows("%d " * 6, rows)).rstrip())

    node = sdf.sub(sdf.sub(sdf.sub(root, "library_visual_scenes"), "visual_scene", id="scene", name="scene"),
                "node", id="city", name="city", type="NODE")
    bind = sdf.sub(sdf.sub(sdf.sub(node, "instance_geometry", url="#city-mesh", name="city"), "bind_material"),
                "technique_common")
    for name, _, _ in groups:
        sdf.sub(bind, "instance_material", symbol=name, target=f"#{name}-material")
    sdf.sub(sdf.sub(root, "scene"), "instance_visual_scene", url="#scene")
    _write_xml(path, root, '<?xml version="1.0" encoding="utf-8"?>')


# ------------------------------------------------------------------------------ Gazebo


def export_gazebo(scene: Scene, out_dir: str | os.PathLike, model_name: str = "vlwm_city",
                  mesh_format: str = DEFAULT_GAZEBO_MESH_FORMAT, world_name: str | None = None,
                  includes: Sequence[WorldInclude] = (), real_time_factor: float = REAL_TIME_FACTOR) -> Path:
    """Write a gz-sim (SDF 1.9) world folder with the scene as a static model; return ``world.sdf``.

    Layout::

        out_dir/world.sdf
        out_dir/models/<model_name>/model.config
        out_dir/models/<model_name>/model.sdf
        out_dir/models/<model_name>/meshes/city.<obj|dae>   (+ city.mtl)

    Run it with the models folder on the resource path (``model://`` URIs resolve there)::

        GZ_SIM_RESOURCE_PATH=<out_dir>/models:$GZ_SIM_RESOURCE_PATH gz sim -v4 -r <out_dir>/world.sdf

    The world's origin is the scene's local origin: ``<spherical_coordinates>`` holds its latitude,
    longitude (JGD2011, equal to WGS84 within a few centimetres) and orthometric height (m above
    Tokyo Bay mean sea level, what ArduPilot treats as AMSL) with an ENU world frame and heading 0.

    Parameters
    ----------
    mesh_format : {'obj', 'dae'}
        OBJ by default (see :data:`DEFAULT_GAZEBO_MESH_FORMAT`).
    world_name : str or None
        ``<world name>``; ``model_name`` when None.
    includes : sequence of WorldInclude
        More models (vehicles) added after the city, in order; their names must differ from
        ``model_name`` and from each other.
    real_time_factor : float
        ``<physics><real_time_factor>``: 1 = real time; a value <= 0 runs as fast as the machine
        allows (ArduPilot's example worlds use -1 for that).
    """
    if not _MODEL_NAME.match(model_name):
        raise ValueError(f"model name {model_name!r} must be letters, digits, '_', '-', '.' (it is a folder "
                         "and a model:// URI)")
    mesh_format = mesh_format.lower()
    if mesh_format not in GAZEBO_MESH_FORMATS:
        raise ValueError(f"Gazebo mesh format {mesh_format!r} not supported; choose one of {list(GAZEBO_MESH_FORMATS)}")
    names = [model_name] + [inc.name for inc in includes]
    if len(set(names)) != len(names):
        raise ValueError(f"world model names must be unique, got {names}")
    out_dir = Path(out_dir)
    model_dir = out_dir / "models" / model_name
    mesh = export_mesh(scene, model_dir / "meshes" / f"city.{mesh_format}", mesh_format)
    _write_xml(model_dir / "model.config", _model_config(scene, model_name))
    _write_xml(model_dir / "model.sdf", _model_sdf(model_name, f"model://{model_name}/meshes/{mesh.name}"))
    world = out_dir / "world.sdf"
    _write_xml(world, _world_sdf(scene, model_name, world_name or model_name, includes, real_time_factor))
    return world


def _model_config(scene: Scene, model_name: str) -> ET.Element:
    lat, lon, h = scene.geo.latlon()
    root = ET.Element("model")
    sdf.sub(root, "name", model_name)
    sdf.sub(root, "version", "1.0")
    sdf.sub(root, "sdf", "model.sdf", version=SDF_VERSION)
    sdf.sub(sdf.sub(root, "author"), "name", "vlwm")
    sdf.sub(root, "description", f"vlwm city ({scene.meta.get('source', 'unknown source')}): {scene.num_triangles} "
                              f"triangles, one material per occupancy label; local ENU metres, origin at "
                              f"lat {lat:.9f} lon {lon:.9f} height {h:.3f} m")
    return root


def _model_sdf(model_name: str, mesh_uri: str) -> ET.Element:
    root = ET.Element("sdf", version=SDF_VERSION)
    model = sdf.sub(root, "model", name=model_name)
    sdf.sub(model, "static", "true")
    link = sdf.sub(model, "link", name="city")
    for tag in ("collision", "visual"):    # no <material> on the visual: the mesh's own materials show
        sdf.sub(sdf.sub(sdf.sub(sdf.sub(link, tag, name=tag), "geometry"), "mesh"), "uri", mesh_uri)
    return root


def _world_sdf(scene: Scene, model_name: str, world_name: str, includes: Sequence[WorldInclude] = (),
               real_time_factor: float = REAL_TIME_FACTOR) -> ET.Element:
    lat, lon, height = scene.geo.latlon()
    root = ET.Element("sdf", version=SDF_VERSION)
    root.append(ET.Comment(
        f" vlwm city world. Run: GZ_SIM_RESOURCE_PATH=<this folder>/models:$GZ_SIM_RESOURCE_PATH "
        f"gz sim -v4 -r world.sdf  (model://{model_name} resolves under models/). "
        "World frame = the scene's local ENU frame (x east, y north, z up, metres). "))
    world = sdf.sub(root, "world", name=world_name)
    physics = sdf.sub(world, "physics", name="1ms", type="ignore")
    sdf.sub(physics, "max_step_size", sdf.num(PHYSICS_MAX_STEP_S))
    sdf.sub(physics, "real_time_factor", repr(float(real_time_factor)))
    for filename, name in GZ_WORLD_SYSTEMS:
        plugin = sdf.sub(world, "plugin", filename=filename, name=name)
        if name == "gz::sim::systems::Sensors":
            sdf.sub(plugin, "render_engine", SENSORS_RENDER_ENGINE)
    sdf.sub(world, "gravity", sdf.vec((0.0, 0.0, -STANDARD_GRAVITY)))
    scene_el = sdf.sub(world, "scene")
    sdf.sub(scene_el, "ambient", "1.0 1.0 1.0 1.0")
    sdf.sub(scene_el, "background", "0.8 0.8 0.8 1.0")
    sdf.sub(scene_el, "sky")

    world.append(ET.Comment(
        " Geo-origin of the local frame: JGD2011 latitude/longitude (= WGS84 within a few cm) and "
        "orthometric height (m above Tokyo Bay mean sea level). "))
    sph = sdf.sub(world, "spherical_coordinates")
    sdf.sub(sph, "surface_model", "EARTH_WGS84")
    sdf.sub(sph, "world_frame_orientation", "ENU")
    sdf.sub(sph, "latitude_deg", repr(lat))
    sdf.sub(sph, "longitude_deg", repr(lon))
    sdf.sub(sph, "elevation", repr(height))
    sdf.sub(sph, "heading_deg", "0")

    sun = sdf.sub(world, "light", type="directional", name="sun")
    sdf.sub(sun, "cast_shadows", "true")
    sdf.sub(sun, "pose", "0 0 10 0 0 0")
    sdf.sub(sun, "diffuse", "0.8 0.8 0.8 1")
    sdf.sub(sun, "specular", "0.8 0.8 0.8 1")
    att = sdf.sub(sun, "attenuation")
    for tag, value in (("range", "1000"), ("constant", "0.9"), ("linear", "0.01"), ("quadratic", "0.001")):
        sdf.sub(att, tag, value)
    sdf.sub(sun, "direction", "-0.5 0.1 -0.9")

    for inc in (WorldInclude(f"model://{model_name}", model_name, (0.0,) * 6), *includes):
        include = sdf.sub(world, "include")
        sdf.sub(include, "uri", inc.uri)
        sdf.sub(include, "name", inc.name)
        sdf.sub(include, "pose", sdf.vec(inc.pose))
    return root
