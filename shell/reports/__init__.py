"""Reports made from the case data: the monthly report."""
