-- `signet zone remove`: the zone leaves management and its history stays.
-- Its row is renamed (NAME#removed-ID) so that the name can be added again,
-- and one output path is unique among the zones still managed.
ALTER TABLE zones ADD COLUMN removed_at INTEGER;
DROP INDEX zones_by_output;
CREATE UNIQUE INDEX zones_by_output ON zones(output_path) WHERE removed_at IS NULL;
