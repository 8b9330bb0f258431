"""Reports read results folders only, so any old run can be re-reported or compared."""
