"""halt and resume: the emergency stop, its sweep, its record and report."""
