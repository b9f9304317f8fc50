//! What a run records and tells: samples into histograms (`record`), the report and its
//! metrics (`report`), thresholds judged (`verdict`), the HTML page (`html`), result files and
//! their merge (`merge`), and output files written whole (`output`).

pub mod charts;
pub mod html;
pub mod identity;
pub mod merge;
pub mod metrics;
pub mod output;
pub mod record;
pub mod report;
pub mod text;
pub mod verdict;
pub mod ws;
