"""Files in and out, beside the pipeline's stages (every stage may import io; io imports none of them).

* The recording format, owned here and used by every stage: :mod:`vlwm.io.recording` (folder layout,
  frame numbering, pose files), :mod:`vlwm.io.manifest` (the typed ``sequence.json``),
  :mod:`vlwm.io.sequence_writer` (writing a recording frame by frame), :mod:`vlwm.io.frames` (poses
  and sensor-frame transforms), :mod:`vlwm.io.image_io` (the camera image files) and
  :mod:`vlwm.io.atomic` (the one atomic file write).
* ROS 2 bags to and from that format (``vlwm import-bag`` / ``export-bag``).
* Resumable verified downloads, safe archive extraction, the official OccWorld weights and the
  PLATEAU CityGML archive (``vlwm download`` / ``scripts/download_and_prepare_data.sh``).
"""
