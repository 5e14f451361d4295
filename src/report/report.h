/* Search reports (internal): one self-contained HTML page (inline SVG and CSS, no script, no
 * network) from one or more search run directories. mixq_report_write is the public entry;
 * a search calls mq_report_write with its own model and target so a refresh reloads neither. */
#ifndef MIXQ_REPORT_H
#define MIXQ_REPORT_H

#include "mixq/mixq.h"

/* mixq_report_write, with the float model and hardware target of the first run directory
 * already loaded (either may be NULL: then they are loaded from its config.json). The report
 * only reads them (the target's cost memo may grow). */
mixq_status mq_report_write(const char *const *run_dirs, int n, const char *out_path,
                            const mixq_report_config *cfg, const mixq_model *model0, mixq_hw *hw0);

#endif
