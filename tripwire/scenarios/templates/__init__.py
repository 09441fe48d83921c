"""Our own scenario prose, split by kind; `scenarios.render` assembles it."""
