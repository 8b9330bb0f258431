"""Side measurements taken while a point runs (GPU power, energy, utilisation), never on the client's loop."""
