//! Editing the configuration file in place (issue #10: `config set/get/show`), keeping
//! comments and unknown keys. Not written yet.
