//! Reliability: each availability finding of the black-box security and chaos run
//! (stalled bodies, lockout of the owner, storage trouble, replicas, the smaller holes),
//! reproduced against the real binaries and asserted fixed. One submodule per finding.

// clientauth
mod assertions;
mod durability;
mod holes;
mod listeners;
mod lockout;
mod replicas;
mod storage;
mod wiring;
