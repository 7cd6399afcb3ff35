"""What a session keeps on disk: folders, record, event log, notebook."""
