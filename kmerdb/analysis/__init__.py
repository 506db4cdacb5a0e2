"""Comparisons of genomes: colour classes, weights, intersections, distances, trees."""
