"""Tables, plots and run metadata."""
