"""Use cases. They take a Database and a Broker, never print, never read the environment."""
