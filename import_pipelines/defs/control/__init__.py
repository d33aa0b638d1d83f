"""Jobs that keep the control schema in shape: ``control_retention``."""
