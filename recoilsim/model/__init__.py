"""User objects: elements and isotopes, compositions, samples (layers, profiles), beam, geometry, detector, experiment."""
