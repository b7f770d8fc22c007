"""What a results folder holds: run folders, a group's record files, atomic storage, digests and provenance."""
