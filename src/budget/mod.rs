//! Budget decisions, pure: numbers from Prometheus -> an assessment of the error budget ->
//! the rollback policy's next state. The evaluator feeds it; nothing here does I/O.

mod assess;
mod decide;
pub mod format;

pub use assess::{Assessment, NoData, Reading, STALE_AFTER, assess, period_grid};
pub use decide::{Action, Memory, Step, decide, triggered};
