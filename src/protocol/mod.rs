//! Sans-IO codecs (being written).
