// Package budget bounds the memory that concurrent work may take: a FIFO
// weighted semaphore over a budget in KiB, shared by password hashing
// (identity) and the reading of large request bodies (wire). It imports
// only the standard library.
package budget
