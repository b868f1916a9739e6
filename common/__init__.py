"""The shared layer every app plugs its encoder into: settings, storage, jobs, app factory."""
