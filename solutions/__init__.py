"""One package per app; each declares only what is special about its domain."""
