"""Hall core: domain rules, storage, web app, CLI and config."""
