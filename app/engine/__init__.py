"""The upload engine: watcher, queue store, uploader, and the EngineService facade. No Qt."""
