"""The extract-load side of the project: dlt sources, the sample-source simulator and the `elt` harness."""
