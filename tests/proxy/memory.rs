//! Memory: placeholder replaced below.
