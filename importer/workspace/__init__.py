"""A workspace: the upload's file and its operations kept in the database, replayed into a frame."""
