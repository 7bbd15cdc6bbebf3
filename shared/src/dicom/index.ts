export {
  readDicomHead,
  checkDicomHead,
  DicomHeadError,
  type DicomHeadErrorCode,
  type DicomHead,
  type DicomHeadOptions,
  TS_IMPLICIT_VR_LE,
  TS_EXPLICIT_VR_LE,
  TS_DEFLATED_EXPLICIT_VR_LE,
  TS_EXPLICIT_VR_BE,
} from './part10-head';
