-- One published file per zone: two zones writing one output path would
-- replace each other's signed zone.
CREATE UNIQUE INDEX zones_by_output ON zones(output_path);

-- The signing lock names its process by pid AND start time (clock ticks
-- since boot, /proc/PID/stat field 22): a pid alone may by now belong to
-- another program.
ALTER TABLE zones ADD COLUMN lock_started INTEGER;
