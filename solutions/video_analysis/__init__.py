"""Video analysis: find the moment in videos by a picture or by words."""
