"""Many districts from one config file on Dask: validated config, failure isolation, resume,
combined tables and an overview map."""

from lifecircle.batch.run import (
    DISTRICT_META,
    BatchConfig,
    BatchReport,
    district_hash,
    district_row,
    load_config,
    make_cluster,
    run,
)

__all__ = ["BatchConfig", "BatchReport", "DISTRICT_META", "district_hash", "district_row",
           "load_config", "make_cluster", "run"]
