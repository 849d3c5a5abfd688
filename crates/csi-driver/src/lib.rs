//! The CloudSigma CSI Identity and Controller services.
