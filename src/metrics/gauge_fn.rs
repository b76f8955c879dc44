//! A gauge read at scrape time: the value comes from a function over state the proxy keeps anyway
//! (open uploads, buffer memory), so nothing has to keep a copy of it up to date. Owns only the
//! encoding of that value; it must not hold or change the state it reads.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;

type Read = Box<dyn Fn() -> u64 + Send + Sync>;

pub struct GaugeFn(Read);

impl GaugeFn {
    pub fn new(read: impl Fn() -> u64 + Send + Sync + 'static) -> GaugeFn {
        GaugeFn(Box::new(read))
    }
}

impl std::fmt::Debug for GaugeFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GaugeFn")
    }
}

impl EncodeMetric for GaugeFn {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&(self.0)())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}
