"""Worlds: one semantic triangle scene from a procedural Tokyo or PLATEAU CityGML."""

from vlwm.world.geo import GeoOrigin
from vlwm.world.roads import RoadGraph
from vlwm.world.scene import NO_INSTANCE, RayHits, Scene, merge_scenes
from vlwm.world.terrain import Terrain

__all__ = ["GeoOrigin", "NO_INSTANCE", "RayHits", "RoadGraph", "Scene", "Terrain", "merge_scenes"]
