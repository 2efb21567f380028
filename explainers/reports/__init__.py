"""Documents to hand over: the audit report as self-contained HTML, and the same printed to PDF."""
