//! Diagnostics through `log` or `defmt`, whichever feature is on (both, or none).
//! Arguments are kept to integers and string slices so that one format string suits both.

macro_rules! debug {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "log")]
        ::log::debug!($fmt $(, $arg)*);
        #[cfg(feature = "defmt")]
        ::defmt::debug!($fmt $(, $arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { $( let _ = &$arg; )* }
    }};
}

macro_rules! warning {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "log")]
        ::log::warn!($fmt $(, $arg)*);
        #[cfg(feature = "defmt")]
        ::defmt::warn!($fmt $(, $arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { $( let _ = &$arg; )* }
    }};
}

pub(crate) use {debug, warning};
