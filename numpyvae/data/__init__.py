"""Machinery: the data sets (MNIST, Frey Face), their files and downloads, binarization."""
