export * from './types';
export { MtomError, type MtomErrorCode } from './errors';
export { parseMultipart, boundaryFromContentType, MultipartReader } from './multipart';
export { readSoapMessage } from './read';
export { MtomWriter, type MtomWriterOptions } from './writer';
export { base64Stream } from './base64';
export { cidFromHref, contentIdKey, cidHref, XopResolver } from './xop';
export { parseMediaType, type MediaType } from './media-type';
