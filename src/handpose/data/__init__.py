"""Readers that turn data sets on disk into :class:`~handpose.data.records.Record` lists, and the Dataset."""

from handpose.data.coco import load_coco
from handpose.data.freihand import load_freihand, project_points
from handpose.data.records import Record

__all__ = ["Record", "load_coco", "load_freihand", "project_points"]
