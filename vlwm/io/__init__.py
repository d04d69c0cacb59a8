"""Files in and out: resumable verified downloads, safe archive extraction, the official OccWorld
weights and the PLATEAU CityGML archive (``vlwm download`` / ``scripts/download_and_prepare_data.sh``)."""
