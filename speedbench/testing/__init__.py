"""Test fixtures that speak real engines' wire formats (emulators). Never benchmark targets."""
