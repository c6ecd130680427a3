export const PACKAGE_NAME = '@codefeedr/pipelines-github';
