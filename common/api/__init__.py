"""Routes every app gets: health, collections and items, loads, jobs."""
