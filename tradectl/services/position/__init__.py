"""close and adjust: one position's exits changed, cancelled or closed."""
