"""Files the importer writes: the failure report, the customers export, the template."""
