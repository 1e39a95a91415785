"""Speech translation recipes (``esp2_st``)."""
