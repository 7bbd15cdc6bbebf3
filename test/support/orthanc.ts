/**
 * A real Orthanc (DICOMweb plugin) in its own network namespace, for the imaging-source bridge's tests
 * and benchmark. The launcher lives with the demo, which runs the same Orthanc for
 * `npm run demo -- --orthanc`.
 */
export * from '../../services/reference-community/src/demo/orthanc';
