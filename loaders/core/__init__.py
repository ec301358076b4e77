"""What every layer shares and nothing here does I/O beyond reading the project's registry and writing
events: the registry of sources and entities, outcomes and exit codes, settings, timestamps, events."""
