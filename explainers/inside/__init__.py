"""Inside the model: one forward pass of each network seen from inside (no hooks), as plain records."""
