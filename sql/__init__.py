"""SQL files of the payday package: schema/ (per revision) and functions/ (reloaded by every migration)."""
